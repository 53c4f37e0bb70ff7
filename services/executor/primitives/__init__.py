"""One module per kind of node: each renders inputs into one output file, streaming.

Single-input renderers (resize, segment, transform, effect) share
`single.render_single`; the multi-input ones (sequence, layer/blend,
mux/audio mix) drive several `MediaReader`s in step.
"""
