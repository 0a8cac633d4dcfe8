from tasklens.cli import main

main(prog_name="tasklens")
