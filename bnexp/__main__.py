from bnexp.cli import app

app(prog_name="bnexp")
