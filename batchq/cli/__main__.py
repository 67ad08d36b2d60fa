from batchq.cli import main

main()
