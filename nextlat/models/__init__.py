from .layout import Layout, document_ids
from .transformer import ModelConfig, Transformer, count_params, init_weights

__all__ = ["Layout", "document_ids", "ModelConfig", "Transformer", "count_params", "init_weights"]
