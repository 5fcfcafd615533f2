"""The serving side: the Litestar API over the published marts (api.app.create_app; `btcfs
serve`), the dashboard, and pipeline jobs run by a worker (api.jobs, api.worker). Kept
import-light: the root CLI imports only api.cli."""
