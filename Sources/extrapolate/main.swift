import ExtrapolateCLI

Extrapolate.main()
