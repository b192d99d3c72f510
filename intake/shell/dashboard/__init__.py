"""The staff dashboard: server-rendered pages for the desk's staff and its coordinator."""

from __future__ import annotations

from flask import Blueprint, current_app
from flask_babel import lazy_gettext as _l

from intake.shell import oidc

bp = Blueprint("dashboard", __name__, template_folder="../templates")

# The menu, in order: (endpoint, label, coordinator only). A page shows up in the menu
# once its view exists, so each page can be added on its own.
NAV = (
    ("dashboard.now", _l("Now"), False),
    ("dashboard.contacts", _l("Contacts"), False),
    ("dashboard.walk_in", _l("Walk-in"), False),
    ("dashboard.rota", _l("Rota"), True),
    ("dashboard.demand", _l("Demand"), True),
    ("dashboard.topics", _l("Topics"), True),
    ("dashboard.announcements_page", _l("Recordings"), True),
    ("dashboard.users", _l("Accounts"), True),
    ("dashboard.access_log", _l("Access log"), True),
)


@bp.app_context_processor
def menu() -> dict[str, object]:
    def nav_pages() -> list[tuple[str, object, bool]]:
        return [entry for entry in NAV if entry[0] in current_app.view_functions]

    return {"nav_pages": nav_pages, **login_choices()}


def login_choices() -> dict[str, object]:
    """What the login page offers: the organisation's sign-in (its name, "" when unnamed,
    None when there is none) and whether the dashboard's own passwords count."""
    return {
        "sso_name": current_app.config.get("OIDC_NAME", "") if oidc.enabled() else None,
        "local_login": oidc.local_login_allowed(),
    }


from intake.shell.dashboard import access_page as access_page  # noqa: E402
from intake.shell.dashboard import account as account  # noqa: E402
from intake.shell.dashboard import announcements as announcements  # noqa: E402
from intake.shell.dashboard import board_actions as board_actions  # noqa: E402
from intake.shell.dashboard import calling_back as calling_back  # noqa: E402
from intake.shell.dashboard import contacts as contacts  # noqa: E402
from intake.shell.dashboard import demand_page as demand_page  # noqa: E402
from intake.shell.dashboard import formats as formats  # noqa: E402
from intake.shell.dashboard import password_page as password_page  # noqa: E402
from intake.shell.dashboard import recordings as recordings  # noqa: E402
from intake.shell.dashboard import rota as rota  # noqa: E402
from intake.shell.dashboard import rota_closures as rota_closures  # noqa: E402
from intake.shell.dashboard import sso as sso  # noqa: E402
from intake.shell.dashboard import topics as topics  # noqa: E402
from intake.shell.dashboard import users as users  # noqa: E402
from intake.shell.dashboard import views as views  # noqa: E402  (registers the routes on bp)
from intake.shell.dashboard import walk_in as walk_in  # noqa: E402
