"""TicketFairy: publish events as draft events through TicketFairy's API."""
