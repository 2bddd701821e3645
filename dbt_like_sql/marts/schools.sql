with schools as ({{ district_slice(ref('int_schools__scoped'), where='in_scope') }}),

final as (
    select
        district_id, school_id, name, sis_id, state_id, nces_id, low_grade, high_grade
    from schools
)

select * from final
