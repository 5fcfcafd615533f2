{{ stg_binance_klines('perp_klines') }}
