"""Small helpers shared by the command line and the web page."""


def hms(seconds: float) -> str:
    """A time as people read it in a player: h:mm:ss."""
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
