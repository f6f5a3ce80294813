"""The servers the sinks need, on 127.0.0.1, for the tests and the `dev` environment.

    with Postgres.start() as pg: ...          # pg.url
    with S3.start() as s3: ...                # s3.endpoint_url, s3.access_key, s3.secret_key
    python -m honey_duck_dev.services up [--only postgres,s3] [--data-dir DIR] [--any-port]

`lifecycle` starts, waits for and stops any server; each other module is one server, and
`registry` names them by the one word of their sink.
"""
