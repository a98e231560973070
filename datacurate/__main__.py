from datacurate.cli import run

run()
