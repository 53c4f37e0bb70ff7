"""One module per kind of node: each renders inputs into one output file, streaming.

Single-input renderers (resize, segment, transform, effect, and `chain`, which runs several
of those in one pass) share `single.render_single`; `cuts` renders pieces of one input one
after another through one encoder; the multi-input ones (sequence, layer/blend, mux/audio
mix) drive several `MediaReader`s in step. Which encoder profile they write with is the
step's hand-off (`services.executor.encoding.active_profile`).
"""
