# A frozen pyzpatch command line needs what hook-pyzpatch.py keeps out of everything else:
# typer and rich, cryptography for keygen and signing (when it is installed), and ctypes for the
# one-step exchange of two folders.
hiddenimports = [
    "typer",
    "rich",
    "ctypes",
    "cryptography.exceptions",
    "cryptography.hazmat.primitives.serialization",
    "cryptography.hazmat.primitives.asymmetric.ed25519",
]
warn_on_missing_hiddenimports = False
