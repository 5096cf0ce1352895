"""Scale benchmarks of cs-warehouse: ``csw bench --tier S|M|L`` (see ``benchmarks/README.md``).

Imported from the repository root (it is not part of the installed packages): ``csw bench``
puts the repository on ``sys.path`` itself.
"""
