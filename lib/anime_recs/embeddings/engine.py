"""Inference engines of a sentence-transformers embedder: torch, or ONNX Runtime (fp32 or int8).

The same saved SentenceTransformer folder runs on one of:

- ``torch`` (``quantize: none``): the model as trained; the only engine on a GPU;
- ``onnx`` + ``quantize: none``: the graph exported to ONNX, run by ONNX Runtime on CPU;
- ``onnx`` + ``quantize: int8``: that graph with dynamic int8 quantization of the weight
  matrix products (:func:`int8_config`), the fast CPU engine.

An ONNX export is made once per model content (its fingerprint) and quantization, on the
driver, into a cache folder renamed into place when complete (:func:`exported_folder`), so
executors never export and never see a half-written export. The engine is part of the vectors'
version (:func:`engine_tag`), so vectors of different engines never mix.

Importable without pyspark: the GPU/CPU timing scripts load the engine directly.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

ONNX_FILE = "onnx/model.onnx"
INT8_SUFFIX = "int8"
INT8_FILE = f"onnx/model_{INT8_SUFFIX}.onnx"
COMPLETE_MARKER = ".complete"


def engine_tag(backend: str, quantize: str) -> str:
    """The engine's part of a vector version: ``""`` for torch fp32 (the versions written
    before engines existed stay valid), else ``-<backend>`` plus ``-<quantize>`` unless none,
    e.g. ``-onnx-int8``."""
    if backend == "torch" and quantize == "none":
        return ""
    return f"-{backend}" + ("" if quantize == "none" else f"-{quantize}")


def onnx_file(quantize: str) -> str:
    """The ONNX graph of an export folder that ``quantize`` runs."""
    return INT8_FILE if quantize == "int8" else ONNX_FILE


def activation_matmuls(onnx_path: str | Path) -> list[str]:
    """Names of the MatMul nodes of a graph whose inputs are both activations (attention's
    Q.K^T and weights.V): dynamic quantization would round both operands per batch, so they
    stay fp32; only products with a weight matrix are quantized."""
    import onnx

    graph = onnx.load(str(onnx_path)).graph
    constants = {i.name for i in graph.initializer}
    constants |= {o for node in graph.node if node.op_type == "Constant" for o in node.output}
    return [
        node.name
        for node in graph.node
        if node.op_type == "MatMul" and not any(i in constants for i in node.input)
    ]


def int8_config(exclude: list[str]) -> Any:
    """Dynamic int8 quantization: per-channel symmetric int8 weights (per-tensor weights lose
    far more: median cosine to fp32 ~0.95 instead of ~0.99), uint8 activations scaled per
    batch, MatMul only (embedding tables stay fp32), ``exclude`` left in fp32."""
    from optimum.onnxruntime.configuration import AutoQuantizationConfig

    return AutoQuantizationConfig.avx512_vnni(
        is_static=False,
        per_channel=True,
        operators_to_quantize=["MatMul"],
        nodes_to_exclude=exclude,
    )


def export_onnx(model_folder: str, quantize: str, target: Path) -> None:
    """Export the SentenceTransformer in ``model_folder`` to ONNX into ``target`` (a saved
    SentenceTransformer folder with ``onnx/model.onnx``), plus the int8 graph when asked."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.backend import export_dynamic_quantized_onnx_model

    model = SentenceTransformer(
        model_folder, backend="onnx", device="cpu", model_kwargs={"export": True}
    )
    model.save_pretrained(str(target))
    if quantize == "int8":
        exported = SentenceTransformer(
            str(target), backend="onnx", device="cpu", model_kwargs={"file_name": ONNX_FILE}
        )
        config = int8_config(activation_matmuls(target / ONNX_FILE))
        export_dynamic_quantized_onnx_model(exported, config, str(target), file_suffix=INT8_SUFFIX)


def exported_folder(model_folder: str, fingerprint: str, quantize: str, cache_root: Path) -> str:
    """The ONNX export of ``model_folder`` (content ``fingerprint``) for ``quantize``, made
    once under ``cache_root`` and reused: a temp folder renamed into place when complete, so a
    crash or a concurrent export never leaves a partial one in use."""
    target = cache_root / "onnx" / f"{fingerprint}-{quantize}"
    if (target / COMPLETE_MARKER).is_file():
        return str(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=target.parent))
    try:
        export_onnx(model_folder, quantize, tmp)
        (tmp / COMPLETE_MARKER).write_text(fingerprint)
        if target.exists() and not (target / COMPLETE_MARKER).is_file():
            shutil.rmtree(target, ignore_errors=True)  # an earlier, interrupted export
        try:
            tmp.rename(target)
        except OSError:  # another process completed the same export first
            if not (target / COMPLETE_MARKER).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("exported %s to ONNX (%s) in %s", model_folder, quantize, target)
    return str(target)


def export_archive(folder: str, quantize: str) -> str:
    """``<folder>.zip``: the export with only the graph ``quantize`` runs (what executors
    need), made once next to the folder and renamed into place when complete. Spark ships it
    with ``SparkContext.addArchive`` (a cluster accepts files and archives, not folders)."""
    source = Path(folder)
    target = source.with_name(source.name + ".zip")
    if target.is_file():
        return str(target)
    unused = {ONNX_FILE, INT8_FILE} - {onnx_file(quantize)}
    fd, tmp = tempfile.mkstemp(prefix=".archive-", suffix=".zip", dir=source.parent)
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
            for file in sorted(p for p in source.rglob("*") if p.is_file()):
                name = file.relative_to(source).as_posix()
                if name not in unused:
                    archive.write(file, name)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return str(target)


def load_onnx_model(
    folder: str, quantize: str, max_seq_length: int | None, num_threads: int | None = None
) -> Any:
    """A SentenceTransformer of an :func:`exported_folder` run by ONNX Runtime on CPU
    (``num_threads`` intra-op threads); torch models load through
    ``anime_recs.models.load_sentence_transformer``."""
    import onnxruntime
    from sentence_transformers import SentenceTransformer

    options = onnxruntime.SessionOptions()
    if num_threads:
        options.intra_op_num_threads = num_threads
        options.inter_op_num_threads = 1
    model = SentenceTransformer(
        folder,
        backend="onnx",
        device="cpu",
        model_kwargs={
            "file_name": onnx_file(quantize),
            "provider": "CPUExecutionProvider",
            "session_options": options,
        },
    )
    if max_seq_length is not None:
        model.max_seq_length = max_seq_length
    return model
