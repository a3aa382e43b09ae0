from .cli import run

if __name__ == "__main__":  # not when a worker process (--jobs) imports the main module again
    run()
