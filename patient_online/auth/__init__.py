"""Sign-in: accounts, second factor, sessions and NHS login."""
