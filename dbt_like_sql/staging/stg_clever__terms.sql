{{ config(materialized='view') }}
with numbered as (
    select
        *,
        row_number() over (partition by district_id, id order by id) as copy_number
    from {{ source('clever', 'terms') }}
),

source as (
    -- An id served twice (within a page or across pages) keeps one row.
    select * from numbered where copy_number = 1
),

final as (
    select
        district_id,
        id as term_id,
        nullif(trim(name), '') as name,
        nullif(trim(start_date), '') as start_date,
        nullif(trim(end_date), '') as end_date
    from source
)

select * from final
