"""arnn-zoo: fast autoregressive neural-network wavefunctions in dm-haiku."""
