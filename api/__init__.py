"""The serving side: `btcfs publish` (warehouse.publish) and the Litestar API over the published
marts (api.app.create_app; `btcfs serve`). Kept import-light: the CLI loads warehouse.publish."""
