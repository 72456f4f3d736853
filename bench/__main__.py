import sys

if "--filter" in sys.argv[1:]:
    from bench.filtered import main
elif "--scale" in sys.argv[1:]:
    from bench.scale import main
else:
    from bench.run import main

main()
