from poetgen.cli import main

main()
