"""The request and response models of ticketing's API, one module per resource; import each from its
module (`from ticketing.schemas.tickets import TicketPublic`)."""
