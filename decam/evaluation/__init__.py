"""Judging saliency maps: metrics (insertion / deletion and the rest of the suite), the methods decam
is compared with, and the tables and figures of a comparison.

Core layer, beside ``search``: neither imports the other. decam itself joins the comparison as
a method registered from ``workflows``.
"""
