"""Jobs over many images: explain a folder into files, evaluate methods, run a study, spread work over Ray.

Everything the command line does, as functions that report through callbacks; the CLI only
parses arguments and prints.
"""
