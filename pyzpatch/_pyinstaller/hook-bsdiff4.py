# bsdiff4/__init__.py's test() imports bsdiff4.test_all, bsdiff4's own test suite, which pulls in
# unittest, asyncio, http and ssl. A frozen program never runs it. (Shipped by pyzpatch.)
excludedimports = ["bsdiff4.test_all"]
