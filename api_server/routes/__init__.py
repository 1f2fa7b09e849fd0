"""The REST API's routes, one module per area, each an :class:`fastapi.APIRouter`
included under ``/v1`` by :func:`convmem_api.app.create_app`."""
