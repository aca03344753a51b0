"""``GET /api/loyalty/points``: an agent's look-up of a customer's points by phone.

No ``from __future__ import annotations``: FastAPI reads the route's annotations at run time.
"""

import logging
from typing import Annotated

from fastapi import APIRouter, Query

from loyalty_worker.api.dashboard_deps import PrincipalDep, check
from loyalty_worker.api.deps import DirectoryDep, ServicesDep
from loyalty_worker.api.errors import invalid, responses
from loyalty_worker.api.lookup_timing import LOOKUP_DURATION
from loyalty_worker.api.models import ORG_ID_PATTERN
from loyalty_worker.domain.access import Action
from loyalty_worker.domain.phone import mask_phone
from loyalty_worker.services.lookup.points import InvalidPhone, check_points
from loyalty_worker.services.lookup.points_answer import PointsCheck

log = logging.getLogger(__name__)

router = APIRouter()


@router.get(
    "/api/loyalty/points",
    summary="A customer's points by phone: calculated and Alpine IQ, reconciled",
    response_model=PointsCheck,
    responses=responses(401, 403, 404, 503),
)
def points(
    org_id: Annotated[str, Query(alias="orgId", pattern=ORG_ID_PATTERN, description="The org.")],
    phone: Annotated[
        str,
        Query(min_length=1, max_length=32, description="The customer's US phone, any format."),
    ],
    who: PrincipalDep,
    services: ServicesDep,
    directory: DirectoryDep,
) -> PointsCheck:
    """The profile's calculated points (last sync) and Alpine IQ's live balance. With Alpine
    IQ down the answer comes from Firestore alone: ``alpineAvailable`` false, and a note."""
    check(who, org_id, Action.READ, None)
    with LOOKUP_DURATION.time():
        org = directory.get_org_settings(org_id)
        try:
            answer = check_points(
                org_id,
                phone,
                store=directory,
                alpine=services.alpine_for(org),
                phone_key=services.phone_key,
            )
        except InvalidPhone as exc:
            raise invalid(("query", "phone"), str(exc)) from None
    log.info(
        "caller %s: org %s: points of %s: %s",
        who.name,
        org_id,
        mask_phone(phone),
        answer.status,
    )
    return answer
