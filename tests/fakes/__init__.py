"""In-process fakes of the Google services the backends talk to, on 127.0.0.1."""
