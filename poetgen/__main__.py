from poetgen.repl.console import main

main()
