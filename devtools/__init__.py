"""Development tools shared by the tests, the benchmarks and the deploy checks: a real uvicorn server, a tiny
randomly initialised model directory, generated images. Never imported by `service` or `models`."""
