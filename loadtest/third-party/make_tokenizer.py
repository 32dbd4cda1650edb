#!/usr/bin/env python3
"""Build a small, local, Hugging Face-format tokenizer directory for guidellm.

guidellm needs a "processor" (tokenizer) to size synthetic prompts and to count tokens; its default
is to download the model's tokenizer from the Hugging Face hub, which this machine cannot reach.
This trains a byte-level BPE (GPT-2 style, vocab 8192) on local text only -- a deterministic
corpus made from Python's own documentation strings plus the repo's Markdown -- and saves it as
tokenizer.json + tokenizer_config.json, loadable with transformers.AutoTokenizer.from_pretrained(DIR)
with HF_HUB_OFFLINE=1. Token counts from it are NOT the served model's (Llama-3) counts; guidellm
uses the server's `usage` for output-token metrics when the server reports it.

usage: make_tokenizer.py OUT_DIR [REPO_ROOT]   (idempotent: does nothing if OUT_DIR/tokenizer.json exists)
"""
import os
import pathlib
import pydoc
import sys


def corpus(repo_root):
    # Markdown of the repo (stable text that ships with the checkout)
    for p in sorted(pathlib.Path(repo_root).rglob("*.md")):
        if any(part in ("target", "peers", "node_modules") or part.startswith(".") for part in p.parts):
            continue
        try:
            yield p.read_text(encoding="utf-8", errors="replace")
        except OSError:
            pass
    # English prose from the standard library's docstrings (always present, no download)
    import builtins, collections, itertools, json, os as _os, re, string, textwrap, typing, pathlib as _pl
    for mod in (builtins, collections, itertools, json, _os, re, string, textwrap, typing, _pl):
        yield pydoc.render_doc(mod, renderer=pydoc.plaintext)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    out = pathlib.Path(sys.argv[1])
    repo_root = sys.argv[2] if len(sys.argv) > 2 else str(pathlib.Path(__file__).resolve().parents[2])
    if (out / "tokenizer.json").exists():
        print(f"make_tokenizer: {out} exists, keeping it")
        return
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    tok = ByteLevelBPETokenizer()
    tok.train_from_iterator(
        corpus(repo_root), vocab_size=8192, min_frequency=2,
        special_tokens=["<|endoftext|>"], show_progress=False,
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|endoftext|>", eos_token="<|endoftext|>", unk_token="<|endoftext|>",
        model_max_length=131072,
    )
    # a minimal chat template so apply_chat_template works if anything asks for it
    fast.chat_template = (
        "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}assistant: {% endif %}"
    )
    out.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(str(out))
    print(f"make_tokenizer: wrote {out} (vocab {fast.vocab_size})")


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    main()
