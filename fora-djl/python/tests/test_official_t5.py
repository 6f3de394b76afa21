"""Our T5 v1.1 encoder against the official transformers `T5EncoderModel`, when its source is given:

    OFFICIAL_TRANSFORMERS=/path/to/transformers /usr/bin/python3 -m pytest -q tests/test_official_t5.py

The path is a transformers checkout (`src/transformers/...`) or an unpacked wheel
(`transformers/...`); nothing of it is committed here. Only three of its files are run:
`models/t5/configuration_t5.py`, `models/t5/modeling_t5.py` and `activations.py` (the
`gelu_new` of v1.1's gated feed-forward). Debian packages neither transformers nor its
dependencies, so `_stubs` provides the few library names those files import: a
`PreTrainedModel` that is a plain module running the model's own `_init_weights` in `post_init`
and giving no head mask, a `PretrainedConfig` holding the attributes the encoder reads (eager
attention, no cache, dict outputs), identity decorators for docstrings and deprecations, and
empty classes for the cache, generation, ONNX and mask-converter types the encoder never uses.
Everything the encoder computes (embedding, relative position buckets and bias, attention with
the padding mask, RMSNorm, gated-GELU feed-forward, final norm) is the official code.
"""
import importlib.util
import logging
import os
import sys
import types

import pytest
import torch
from torch import nn

from fora_tools import t5

OFFICIAL = os.environ.get("OFFICIAL_TRANSFORMERS")
pytestmark = pytest.mark.skipif(not OFFICIAL, reason="set OFFICIAL_TRANSFORMERS to a transformers checkout or wheel")

# Default buckets (32 up to distance 128) with sequences past 128, and few buckets over a short range.
CONFIGS = {
    "default-buckets": t5.T5Config(vocab_size=100, d_model=32, d_kv=8, d_ff=48, num_layers=3, num_heads=4),
    "few-buckets": t5.T5Config(vocab_size=60, d_model=24, d_kv=6, d_ff=40, num_layers=2, num_heads=3,
                               relative_attention_num_buckets=8, relative_attention_max_distance=20),
}
LENGTHS = {"default-buckets": 150, "few-buckets": 30}
BOUND = 1e-5


def _package_root() -> str:
    for root in (os.path.join(OFFICIAL, "src", "transformers"), os.path.join(OFFICIAL, "transformers")):
        if os.path.isfile(os.path.join(root, "models", "t5", "modeling_t5.py")):
            return root
    raise FileNotFoundError(f"no transformers/models/t5/modeling_t5.py under {OFFICIAL} (or its src/)")


def _stubs(root: str) -> dict:
    def mod(name, path=None, **attrs):
        m = types.ModuleType(name)
        if path is not None:
            m.__path__ = [path]
        m.__dict__.update(attrs)
        return m

    def identity_factory(*_args, **_kwargs):
        return lambda f: f

    def auto_docstring(obj=None, **_kwargs):  # used bare and with arguments
        return obj if obj is not None else (lambda f: f)

    class Logger(logging.LoggerAdapter):
        def warning_once(self, *args, **kwargs):
            self.warning(*args, **kwargs)

    class Empty:
        pass

    class PretrainedConfig:
        def __init__(self, pad_token_id=None, eos_token_id=None, is_encoder_decoder=False, **kwargs):
            self.pad_token_id, self.eos_token_id, self.is_encoder_decoder = pad_token_id, eos_token_id, is_encoder_decoder
            self.is_decoder = False
            self.output_attentions = False
            self.output_hidden_states = False
            self.use_return_dict = True
            self.tie_word_embeddings = True
            self._attn_implementation = "eager"
            self.__dict__.update(kwargs)

    class PreTrainedModel(nn.Module):
        def __init__(self, config, *args, **kwargs):
            super().__init__()
            self.config = config

        def post_init(self):
            self.apply(self._init_weights)

        def get_head_mask(self, head_mask, num_layers):
            assert head_mask is None
            return [None] * num_layers

    class ModelOutput:
        def __init__(self, **kwargs):
            self.__dict__.update(kwargs)

    outputs = {n: type(n, (ModelOutput,), {}) for n in (
        "BaseModelOutput", "BaseModelOutputWithPastAndCrossAttentions", "Seq2SeqLMOutput", "Seq2SeqModelOutput",
        "Seq2SeqQuestionAnsweringModelOutput", "Seq2SeqSequenceClassifierOutput", "TokenClassifierOutput")}
    never = lambda *a, **k: False  # noqa: E731
    utils_logging = mod("transformers.utils.logging", get_logger=lambda name: Logger(logging.getLogger(name), {}))
    stubs = {
        "transformers": mod("transformers", root),
        "transformers.models": mod("transformers.models", os.path.join(root, "models")),
        "transformers.models.t5": mod("transformers.models.t5", os.path.join(root, "models", "t5")),
        "transformers.utils": mod("transformers.utils", None, logging=utils_logging, DUMMY_INPUTS=[[0]], DUMMY_MASK=[[1]],
                                  add_start_docstrings=identity_factory, auto_docstring=auto_docstring,
                                  is_torch_flex_attn_available=never, is_torch_fx_proxy=never,
                                  is_torchdynamo_compiling=never),
        "transformers.utils.logging": utils_logging,
        "transformers.utils.import_utils": mod("transformers.utils.import_utils", is_torchdynamo_compiling=never),
        "transformers.utils.deprecation": mod("transformers.utils.deprecation", deprecate_kwarg=identity_factory),
        "transformers.utils.model_parallel_utils": mod("transformers.utils.model_parallel_utils",
                                                       assert_device_map=None, get_device_map=None),
        "transformers.integrations": mod("transformers.integrations"),
        "transformers.integrations.hub_kernels": mod("transformers.integrations.hub_kernels",
                                                     use_kernel_forward_from_hub=identity_factory),
        "transformers.cache_utils": mod("transformers.cache_utils", Cache=type("Cache", (Empty,), {}),
                                        DynamicCache=type("DynamicCache", (Empty,), {}),
                                        EncoderDecoderCache=type("EncoderDecoderCache", (Empty,), {})),
        "transformers.generation": mod("transformers.generation", GenerationMixin=Empty),
        "transformers.modeling_attn_mask_utils": mod("transformers.modeling_attn_mask_utils", AttentionMaskConverter=Empty),
        "transformers.modeling_layers": mod("transformers.modeling_layers", GradientCheckpointingLayer=nn.Module),
        "transformers.modeling_outputs": mod("transformers.modeling_outputs", **outputs),
        "transformers.modeling_utils": mod("transformers.modeling_utils", PreTrainedModel=PreTrainedModel),
        "transformers.pytorch_utils": mod("transformers.pytorch_utils", find_pruneable_heads_and_indices=None,
                                          prune_linear_layer=None),
        "transformers.configuration_utils": mod("transformers.configuration_utils", PretrainedConfig=PretrainedConfig),
        "transformers.onnx": mod("transformers.onnx", OnnxSeq2SeqConfigWithPast=Empty),
    }
    for name, m in stubs.items():  # `from .x import y` needs x as an attribute of its package
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(stubs[parent], child, m)
    return stubs


@pytest.fixture(scope="module")
def official():
    root = _package_root()
    stubs = _stubs(root)
    files = {"transformers.activations": "activations.py",
             "transformers.models.t5.configuration_t5": os.path.join("models", "t5", "configuration_t5.py"),
             "transformers.models.t5.modeling_t5": os.path.join("models", "t5", "modeling_t5.py")}
    saved = {name: sys.modules.get(name) for name in list(stubs) + list(files)}
    sys.modules.update(stubs)
    try:
        for name, path in files.items():
            spec = importlib.util.spec_from_file_location(name, os.path.join(root, path))
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
            parent, _, child = name.rpartition(".")
            setattr(sys.modules[parent], child, module)
        yield sys.modules["transformers.models.t5.configuration_t5"], sys.modules["transformers.models.t5.modeling_t5"]
    finally:
        for name, m in saved.items():
            if m is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = m


def _official_of(official, cfg: t5.T5Config, seed: int) -> nn.Module:
    configuration, modeling = official
    config = configuration.T5Config(vocab_size=cfg.vocab_size, d_model=cfg.d_model, d_kv=cfg.d_kv, d_ff=cfg.d_ff,
                                    num_layers=cfg.num_layers, num_heads=cfg.num_heads,
                                    relative_attention_num_buckets=cfg.relative_attention_num_buckets,
                                    relative_attention_max_distance=cfg.relative_attention_max_distance,
                                    layer_norm_epsilon=cfg.layer_norm_epsilon, feed_forward_proj="gated-gelu",
                                    dropout_rate=0.0)
    torch.manual_seed(seed)
    return modeling.T5EncoderModel(config).eval()


def _batches(cfg: t5.T5Config, length: int):
    """Token batches with masks as the Java tokenizer makes them: real ids, then padding id 0."""
    g = torch.Generator().manual_seed(11)
    out = []
    for reals in ((length, length // 2, 1), (3, length - 1), (length,)):
        ids = torch.randint(1, cfg.vocab_size, (len(reals), length), generator=g)
        mask = torch.zeros(len(reals), length, dtype=torch.int64)
        for i, r in enumerate(reals):
            mask[i, :r] = 1
            ids[i, r:] = 0
        out.append((ids, mask))
    return out


def _assert_same_outputs(ours: t5.T5Encoder, theirs: nn.Module, cfg: t5.T5Config, length: int) -> None:
    with torch.no_grad():
        for ids, mask in _batches(cfg, length):
            want = theirs(input_ids=ids, attention_mask=mask).last_hidden_state
            got = ours(ids, mask)
            assert got.shape == want.shape
            diff = (got - want).abs().max().item()
            assert diff <= BOUND, f"max abs difference {diff:.3g} for masks {mask.sum(1).tolist()}"


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_the_official_layout_is_ours(official, name):
    cfg = CONFIGS[name]
    theirs = _official_of(official, cfg, seed=0)
    assert {k: list(v.shape) for k, v in theirs.state_dict().items()} == t5.expected_layout(cfg)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_our_encoder_loads_into_the_official_class_and_computes_the_same(official, name):
    cfg = CONFIGS[name]
    torch.manual_seed(1)
    ours = t5.randomise(t5.T5Encoder(cfg), seed=1).eval()
    theirs = _official_of(official, cfg, seed=2)
    theirs.load_state_dict(ours.state_dict(), strict=True)
    _assert_same_outputs(ours, theirs, cfg, LENGTHS[name])


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_the_official_encoder_loads_into_ours_and_computes_the_same(official, name):
    cfg = CONFIGS[name]
    theirs = _official_of(official, cfg, seed=3)  # the official initialisation (norms at 1: perturb them)
    with torch.no_grad():
        for k, p in theirs.named_parameters():
            if k.endswith("layer_norm.weight"):
                p.normal_(1.0, 0.1)
    sd = dict(theirs.state_dict())
    ours = t5.T5Encoder(cfg).eval()
    ours.load_state_dict(sd, strict=True)
    _assert_same_outputs(ours, theirs, cfg, LENGTHS[name])
    # Our checkpoint loader infers the same shape from the state dict; the maximum distance is not in it (every
    # T5 v1.1 checkpoint uses 128).
    assert t5.load(sd).cfg == t5.T5Config(**{**cfg.to_json(), "relative_attention_max_distance": 128})
