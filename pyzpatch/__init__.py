"""pyzpatch: small, verified, byte-exact patches for PyInstaller executables."""
__version__ = "0.1.0"
