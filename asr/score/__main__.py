from asr.score.cli import main

main()
