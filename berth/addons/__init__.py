"""First-party add-on providers, each an ordinary partner behind broker.partner_api."""
