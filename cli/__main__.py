from promptlimits.main import main

raise SystemExit(main())
