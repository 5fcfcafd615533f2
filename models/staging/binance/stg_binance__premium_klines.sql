{{ stg_binance_klines('premium_klines') }}
