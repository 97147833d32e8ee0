"""Files in and out: reading images (every odd format), atomic writes, output names, pictures, and
cross-process claims on a shared output folder.

Base layer: nothing here knows about models, searches or MLflow; an explanation is written from
its plain fields.
"""

from decam.io.files import (atomic_open, cannot_write, check_writable, remove_stale_temporaries, safe_stem, save_json,
                            save_npy, save_png)

__all__ = ["atomic_open", "cannot_write", "check_writable", "remove_stale_temporaries", "safe_stem", "save_json",
           "save_npy", "save_png"]
