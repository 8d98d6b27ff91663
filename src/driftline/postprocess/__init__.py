"""Post-processing: from a simulation's particle file to the SAR products of a mission.

- `cloud`: reads the particle NetCDF into a `Cloud`; the datum track.
- `density`: the probability grid and its NetCDF product.
- `containment`: the 50/90/95 % containment regions and their areas.
- `formats`: GeoJSON and KML text of regions, datums and strandings.
- `map`: the PNG map.
- `products`: the product registry (`PRODUCTS`) and `build_products`.

NetCDF reads and writes hold `driftline.netcdf_io.NETCDF_LOCK`: several missions are
post-processed in threads at once and netCDF4/HDF5 are not thread-safe.
"""
