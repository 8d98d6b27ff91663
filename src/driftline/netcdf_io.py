"""One process-wide lock around every netCDF4/HDF5 call made from worker threads.

The netCDF-C and HDF5 libraries are not thread-safe: two `asyncio.to_thread` calls
reading or writing NetCDF at once crash the process (SIGSEGV in libhdf5). Every code
path that opens a NetCDF file off the event loop holds this lock while it does.
"""

from __future__ import annotations

import threading

NETCDF_LOCK = threading.RLock()
