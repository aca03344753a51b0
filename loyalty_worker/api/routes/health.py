"""Liveness: the process answers."""

from fastapi import APIRouter

router = APIRouter()


@router.get("/healthz", summary="Liveness", response_model=dict[str, str])
def healthz() -> dict[str, str]:
    """The process answers (checks no dependency)."""
    return {"status": "ok"}
