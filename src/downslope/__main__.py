from downslope.cli import main

raise SystemExit(main())
