from simulation.cli import main

raise SystemExit(main())
