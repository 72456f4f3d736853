import sys

if "--filter" in sys.argv[1:]:
    from bench.filtered import main
else:
    from bench.run import main

main()
