"""`mat-jax serve`: a local web page to brush a mask over a photo and see K pluralistic fills.

`app`: request validation and the batched inpaint as pure functions (JSON in, JSON out; no sockets).
`server`: the stdlib `http.server` front (routes, static files, one lock around the model). `static/`: the page
(plain HTML/JS/CSS, no framework, no CDN: works offline).
"""
