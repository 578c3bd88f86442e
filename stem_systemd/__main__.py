from stem_systemd.entry import main

main()
