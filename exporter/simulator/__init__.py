"""A simulated Teleport Cloud tenant: proxy ping, version channel, status page and a fake tctl."""
