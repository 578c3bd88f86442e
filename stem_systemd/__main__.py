from stem_systemd.cli import main

main()
