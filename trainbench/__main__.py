"""python -m trainbench"""

from trainbench.cli.app import main

if __name__ == "__main__":
    main()
