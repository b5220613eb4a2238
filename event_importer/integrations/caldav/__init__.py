"""CalDAV: write each event as a VEVENT into a CalDAV calendar, updated in place."""
