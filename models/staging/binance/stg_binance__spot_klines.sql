{{ stg_binance_klines('spot_klines') }}
