from datacurate.cli.main import run

run()
